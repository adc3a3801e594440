"""Hardware behind interfaces: camera backends, LEDs and buttons (gpiozero), printers."""
