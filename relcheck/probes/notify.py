"""Notices to stakeholders through the configured channels: a Slack-compatible webhook and/or SMTP mail.
A notice counts only when the channel accepted it (HTTP 2xx; SMTP 250 for every recipient)."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

import requests

from relcheck.core.config import Notify
from relcheck.core.secrets import redact


@dataclass
class Delivery:
    channel: str
    accepted: bool
    detail: str


def compose(
    kind: str, product: str, version: str, cfg: Notify, contacts: list[tuple[str, str]], extra: Sequence[str] = ()
) -> tuple[str, str]:
    """Subject and body of a release or rollback notice: version, window, rollback owner, contacts."""
    subject = f"{product} {version}: {kind}"
    lines = [
        f"{kind.capitalize()} of {product} {version}.",
        f"Window: {cfg.window or 'not set'}",
        f"Rollback owner: {cfg.rollback_owner or 'not set'}",
        *extra,
        "",
        "Emergency contacts:",
    ]
    lines += [f"- {role}: {who}" for role, who in contacts] or ["- none listed"]
    return subject, "\n".join(lines)


def send_webhook(url: str, subject: str, body: str, timeout: float) -> Delivery:
    payload = {"text": f"*{subject}*\n{body}"}
    try:
        response = requests.post(url, json=payload, timeout=timeout)
    except requests.RequestException as exc:
        return Delivery("webhook", False, f"unreachable ({type(exc).__name__})")
    accepted = 200 <= response.status_code < 300
    return Delivery("webhook", accepted, f"HTTP {response.status_code} {redact(response.text[:80])}".strip())


def send_mail(cfg, subject: str, body: str) -> Delivery:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, cfg.sender, ", ".join(cfg.recipients)
    message.set_content(body)
    try:
        with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s) as smtp:
            if cfg.starttls:
                smtp.starttls()
            if cfg.user:
                smtp.login(cfg.user, cfg.password)
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return Delivery("smtp", False, redact(f"{type(exc).__name__}: {exc}")[:200])
    if refused:
        return Delivery("smtp", False, f"refused recipients: {', '.join(refused)}")
    return Delivery("smtp", True, f"accepted for {len(cfg.recipients)} recipient(s) by {cfg.host}:{cfg.port}")


def send(cfg: Notify, subject: str, body: str) -> list[Delivery]:
    """Every configured channel; an empty list means no channel is configured."""
    deliveries = []
    if cfg.webhook:
        deliveries.append(send_webhook(cfg.webhook.url, subject, body, cfg.webhook.timeout_s))
    if cfg.smtp:
        deliveries.append(send_mail(cfg.smtp, subject, body))
    return deliveries


NO_CHANNEL = "no notification channel configured (notify.webhook / notify.smtp)"


@dataclass(frozen=True)
class Notice:
    """A notice of this release as sent, and what each channel answered."""

    subject: str
    body: str
    deliveries: list[Delivery]

    @property
    def text(self) -> str:
        return f"{self.subject}\n\n{self.body}"

    def record(self, evidence) -> None:
        """The notice as sent and each channel's answer, as the check's evidence."""
        evidence.text("Notice", self.text)
        rows = [(d.channel, "yes" if d.accepted else "NO", d.detail) for d in self.deliveries]
        evidence.table("Deliveries", ["channel", "accepted", "detail"], rows)

    @property
    def refused(self) -> str:
        """The channels that did not accept it, with their answers ("" when all did)."""
        return "; ".join(f"{d.channel}: {d.detail}" for d in self.deliveries if not d.accepted)


def deliver(config, kind: str, extra: list[str]) -> Notice:
    """Compose a notice of this release and send it through every channel."""
    from relcheck.probes.contacts import of_release

    release = config.release
    subject, body = compose(kind, release.product, release.version, config.notify, of_release(config), extra)
    return Notice(subject, body, send(config.notify, subject, body))
