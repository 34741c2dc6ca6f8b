"""Values the masking tests look for, the rules that find them, and pages full of them."""

from __future__ import annotations

from gateway.core.maskrules import MaskingSettings, MaskPattern, PageMask

CARD, CARD_MASKED = "4111 1111 1111 1111", "**** **** **** 1111"
EMAIL, EMAIL_MASKED = "alice@acme.example", "a***@acme.example"
PHONE, PHONE_MASKED = "+1 555 123 4567", "+* *** *** **67"
TICKET, TICKET_MASKED = "TK-123456", "**-****56"
# look alike, are not: a Luhn-invalid card, an order number, a date and time
DECOYS = "4111 1111 1111 1112 order 100000123 on 2026-12-03 14:05"
ROW = f"<tr><td>{CARD}</td><td>{EMAIL}</td><td>{PHONE}</td><td>{TICKET}</td>" \
      f"<td>{DECOYS}</td></tr>\n"
ROW_MASKED = ROW.replace(CARD, CARD_MASKED).replace(EMAIL, EMAIL_MASKED) \
    .replace(PHONE, PHONE_MASKED).replace(TICKET, TICKET_MASKED)
PATTERNS = {"ticket": MaskPattern("ticket", r"\bTK-\d{4,8}\b", keep_last=2)}
RULES = MaskingSettings(patterns=PATTERNS, pages={
    "order_confirmation": PageMask(text=("card", "email", "phone", "ticket"),
                                   json={"orders[].card": "card", "orders[].buyer.email": "email",
                                         "orders[].note": "secret_note"}),
})


def page(rows: int) -> str:
    return "<html><body><table>\n" + ROW * rows + "</table></body></html>"


def masked_page(rows: int) -> str:
    return "<html><body><table>\n" + ROW_MASKED * rows + "</table></body></html>"
