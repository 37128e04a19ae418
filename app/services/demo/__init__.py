"""The demo: a whole marketplace loop on scikit-learn's bundled digits, with a simulated crowd."""
