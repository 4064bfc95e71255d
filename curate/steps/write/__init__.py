"""Writers: global steps that write the kept records somewhere and decide nothing."""
