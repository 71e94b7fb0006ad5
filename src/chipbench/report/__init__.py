"""`chipbench report`: results from any machines on one offline page."""
