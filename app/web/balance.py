"""Requester balance: a simulated "Top up" payment and the ledger history."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from app.db.models import LedgerAccount
from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import ValidationFailed
from app.services.money import ledger
from app.web.forms import parse_money_cents
from app.web.lists import ListView, list_params
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def _local(target: str) -> str | None:
    parsed = urlparse(target or "")
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _page(request, session, user, *, values=None, errors=None, message=None, status_code=200):
    params = list_params(request, ledger.ENTRY_LIST)
    page = ledger.page_entries(session, user=user, params=params)
    entries = ListView(request, page, target="history", path=request.url_for("balance:index").path)
    return render(
        request,
        "requester/balance/index.html",
        {
            "balance": ledger.get_balance(session, user=user),
            "reserved": ledger.get_balance(session, user=user, account=LedgerAccount.RESERVED),
            "entries": entries,
            "values": values or {},
            "errors": errors or {},
            "message": message,
        },
        status_code=status_code,
    )


@router.get("/requester/balance", name="balance:index")
def balance_page(
    request: Request, session: SessionDep, user: CurrentRequester, amount: str = "", next: str = ""
):
    """Balance, reserved money and the ledger history, with the top-up form."""
    return _page(request, session, user, values={"amount": amount or "10.00", "next": next})


@router.post("/requester/balance/top-up", name="balance:top_up")
def top_up(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    amount: str = Form(""),
    next: str = Form(""),
):
    """Add funds (simulated payment; writes a ledger entry)."""
    values = {"amount": amount, "next": next}
    try:
        cents = parse_money_cents(amount, field="amount", minimum_cents=1)
        balance = ledger.top_up(session, user=user, amount_cents=cents)
    except ValidationFailed as exc:
        return _page(
            request,
            session,
            user,
            values=values,
            errors=exc.errors,
            message=exc.message,
            status_code=422,
        )
    flash(request, f"Added ${cents / 100:,.2f}. Your balance is ${balance / 100:,.2f}.", "success")
    target = _local(next) or str(request.url_for("balance:index"))
    return RedirectResponse(target, status_code=303)
