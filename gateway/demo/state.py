"""The demo shop's in-memory state: catalog, carts, orders, quotes, saved jobs, profiles."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from gateway.demo.trust import Shopper


@dataclass(frozen=True)
class Product:
    """One catalog entry at its list price."""

    sku: str
    name: str
    price: Decimal


CATALOG = {p.sku: p for p in (
    Product("BC-100", "Business cards, 100", Decimal("24.00")),
    Product("BC-500", "Business cards, 500", Decimal("79.00")),
    Product("FLY-A5", "Flyers A5, 250", Decimal("59.00")),
    Product("FLY-A4", "Flyers A4, 250", Decimal("89.00")),
    Product("POS-A2", "Poster A2", Decimal("19.50")),
    Product("POS-A1", "Poster A1", Decimal("29.50")),
    Product("BRO-8", "Brochure, 8 pages, 100", Decimal("149.00")),
    Product("LET-1K", "Letterhead, 1000", Decimal("119.00")),
    Product("ENV-DL", "Envelopes DL, 500", Decimal("64.00")),
    Product("STK-50", "Stickers, 50", Decimal("15.00")),
    Product("BAN-3M", "Roll-up banner", Decimal("189.00")),
    Product("NOTE-A5", "Notepads A5, 25", Decimal("99.00")),
)}
COMPANY_DISCOUNT = {"acme": Decimal("0.10"), "globex": Decimal("0.05")}


def price_for(product: Product, company: str | None) -> Decimal:
    """prices are the buyer's (company prices)."""
    discount = COMPANY_DISCOUNT.get(company or "", Decimal("0"))
    return (product.price * (1 - discount)).quantize(Decimal("0.01"))


@dataclass
class Order:
    """An order, print run or quote, recorded with who it is for and who placed it."""

    id: int
    user: str
    company: str | None
    impersonator: str | None
    items: list[dict[str, Any]]
    total: str
    placed_at: float
    request_id: str | None
    assertion_sub: str | None
    assertion_act: str | None
    po_number: str = ""
    kind: str = "order"  # order | print | quote
    assigned_csr: str | None = None
    impersonation_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ShopState:
    """Everything the shop remembers; carts and profiles are keyed by the effective user."""

    carts: dict[str, dict[str, int]] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    quotes: list[Order] = field(default_factory=list)
    saved_jobs: dict[str, list[str]] = field(default_factory=dict)
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def cart(self, user: str) -> dict[str, int]:
        """Keyed by the effective user: buyer and CSR-as-buyer share one cart."""
        return self.carts.setdefault(user, {})

    def place(self, kind: str, who: Shopper, po_number: str = "") -> Order:
        """An order (or quote) from the effective user's cart; orders empty the cart."""
        cart = self.cart(who.user)
        items: list[dict[str, Any]] = [
            {"sku": sku, "name": CATALOG[sku].name, "qty": qty,
             "price": str(price_for(CATALOG[sku], who.company))} for sku, qty in cart.items()]
        total = sum((Decimal(i["price"]) * i["qty"] for i in items), Decimal("0"))
        order = Order(next(self._ids), who.user, who.company, who.impersonator, items,
                      str(total), time.time(), who.request_id, who.assertion_sub,
                      who.assertion_act, po_number, kind,
                      impersonation_reason=who.impersonation_reason)
        if kind == "quote":
            self.quotes.append(order)
        else:
            self.orders.append(order)
            cart.clear()
        return order

    def record(self, event: str, who: Shopper, **details: Any) -> None:
        self.events.append({"event": event, "user": who.user,
                            "impersonator": who.impersonator, **details})


SHOP_STATE = web.AppKey("shop_state", ShopState)
