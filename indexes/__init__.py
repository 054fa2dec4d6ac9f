"""segue's offline half: listening data in, a versioned, mmappable index bundle out."""
