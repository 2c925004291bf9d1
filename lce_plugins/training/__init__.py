"""Co-evolution training of LCE maps: the loop, its reports and its plots."""
