"""Labels drawn or corrected by the user, stored per series, usable as training labels."""
