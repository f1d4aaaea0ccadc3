"""Testing support: an embedded API server, a virtual clock, and a real-apiserver harness."""
