"""Guidance, the lighting loop and the session state machine.

Talks to hardware only through the kiosk.hw objects it is given.
"""
