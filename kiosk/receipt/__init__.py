"""Image numbers (local authority or the platform), slip layouts, and issuing a receipt.

The session calls `issue_receipt` at hand-over; see kiosk/receipt/issue.py.
"""
