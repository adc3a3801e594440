"""Everything simulated: the scene and citizen in front of the camera, the virtual thermal printer
and the document platform. Product packages never import this; only kiosk.station chooses it."""
