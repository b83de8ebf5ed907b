"""Notification channels (通知渠道): one interface, three adapters.

- `webhook`: a generic JSON webhook (the court's own message bus or duty app);
- `sms`: an SMS gateway (短信网关) over HTTP JSON;
- `wecom`: a WeChat Work group bot (企业微信群机器人), its documented `text` message
  (`msgtype: text`, `mentioned_mobile_list` / `mentioned_list` to @ the person on duty).

URLs and keys come from the environment or from files (k8s Secret / compose secret mounts), never
from git: `ECC_ONCALL_<CHANNEL>_URL` (or `_URL_FILE`) and `ECC_ONCALL_<CHANNEL>_TOKEN` (or
`_TOKEN_FILE`). A channel without a URL is not configured and is skipped when routing.
A send raises DeliveryError with a short reason; the dispatcher records it and retries.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from services.oncall.rules import ROLE_ZH
from shared.masking import mask_text

WECOM_TEXT_MAX_BYTES = 2048  # the bot refuses longer text content (documented limit)


class DeliveryError(Exception):
    """The gateway did not take the message; `reason` is short and safe to log (numbers masked)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = mask_text(reason)[:300]


@dataclass(frozen=True)
class Recipient:
    person: str
    name: str
    role: str
    phone: str | None
    wecom_userid: str | None


@dataclass(frozen=True)
class Message:
    delivery_id: str
    notification_id: str
    step: str
    severity: str
    title: str
    text: str


class Channel(Protocol):
    name: str

    async def send(self, message: Message, to: Recipient) -> None: ...


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
    return response


class WebhookChannel:
    """POST one JSON object per delivery; `Idempotency-Key` lets the receiver drop a retried one."""

    name = "webhook"

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None = None):
        self.client, self.url, self.token = client, url, token

    async def send(self, message: Message, to: Recipient) -> None:
        headers = {"Idempotency-Key": message.delivery_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = {"delivery_id": message.delivery_id, "notification_id": message.notification_id,
                "step": message.step, "severity": message.severity, "title": message.title, "text": message.text,
                "to": {"person": to.person, "name": to.name, "role": to.role}}
        await _post(self.client, self.url, body, headers)


class SmsChannel:
    """短信网关: {"mobile", "content", "request_id"}; `content` starts with the 【sign】 carriers require."""

    name = "sms"

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None = None, sign: str = "执行指挥中心"):
        self.client, self.url, self.token, self.sign = client, url, token, sign

    async def send(self, message: Message, to: Recipient) -> None:
        if not to.phone:
            raise DeliveryError(f"person {to.person} has no phone number")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        # SMS is short: the title and the ack hint, not the alert list.
        content = f"【{self.sign}】{message.title} 请登录指挥中心确认（{message.notification_id}）"
        response = await _post(self.client, self.url, {"mobile": to.phone, "content": content,
                                                       "request_id": message.delivery_id}, headers)
        _gateway_code(response, "code", ("0", "OK", "ok"))


class WeComBotChannel:
    """企业微信群机器人: POST {"msgtype": "text", "text": {"content", "mentioned_list", "mentioned_mobile_list"}}
    to the bot's webhook URL (its `key` is the secret); the answer's `errcode` is 0 on success."""

    name = "wecom"

    def __init__(self, client: httpx.AsyncClient, url: str):
        self.client, self.url = client, url

    async def send(self, message: Message, to: Recipient) -> None:
        content = f"{message.text}\n值班：{to.name}（{_role_zh(to.role)}）"
        text: dict[str, Any] = {"content": _truncate_bytes(content, WECOM_TEXT_MAX_BYTES)}
        if to.wecom_userid:
            text["mentioned_list"] = [to.wecom_userid]
        elif to.phone:
            text["mentioned_mobile_list"] = [to.phone]
        response = await _post(self.client, self.url, {"msgtype": "text", "text": text}, {})
        _gateway_code(response, "errcode", ("0",))


def _role_zh(role: str) -> str:
    return ROLE_ZH.get(role, role)


def _truncate_bytes(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def _gateway_code(response: httpx.Response, key: str, ok: tuple[str, ...]) -> None:
    """Gateways answer HTTP 200 with an error code in the body; anything but `ok` is a failure."""
    try:
        body = response.json()
    except ValueError:
        return  # a plain 2xx without JSON: the gateway took it
    if isinstance(body, dict) and key in body and str(body[key]) not in ok:
        raise DeliveryError(f"gateway {key}={body[key]}: {str(body.get('errmsg') or body.get('message') or '')[:200]}")


# -- configuration ---------------------------------------------------------------------------------

def _secret(env: dict[str, str], name: str) -> str | None:
    """VAR, or the content of the file VAR_FILE names (a mounted secret); None when neither is set."""
    value = env.get(name)
    if value:
        return value.strip()
    path = env.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return None


def build_channels(client: httpx.AsyncClient, env: dict[str, str] | None = None) -> dict[str, Channel]:
    """The configured channels, by name; the others are absent (skipped when routing)."""
    env = dict(os.environ) if env is None else env
    out: dict[str, Channel] = {}
    if url := _secret(env, "ECC_ONCALL_WEBHOOK_URL"):
        out["webhook"] = WebhookChannel(client, url, _secret(env, "ECC_ONCALL_WEBHOOK_TOKEN"))
    if url := _secret(env, "ECC_ONCALL_SMS_URL"):
        out["sms"] = SmsChannel(client, url, _secret(env, "ECC_ONCALL_SMS_TOKEN"),
                                env.get("ECC_ONCALL_SMS_SIGN") or "执行指挥中心")
    if url := _secret(env, "ECC_ONCALL_WECOM_URL"):
        out["wecom"] = WeComBotChannel(client, url)
    return out
