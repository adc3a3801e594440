"""Security findings (issue 13): one test per finding, each failing on the code before its fix."""
