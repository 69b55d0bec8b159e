"""E-mail intake (every source stores raw mail first, then one job makes tickets and comments) and
notifications out."""
