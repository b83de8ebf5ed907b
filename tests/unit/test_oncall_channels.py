"""oncall's channel adapters: the request each gateway gets, how a gateway's refusal is read, configuration."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from services.oncall.channels import (
    WECOM_TEXT_MAX_BYTES, DeliveryError, Message, Recipient, SmsChannel, WebhookChannel, WeComBotChannel,
    build_channels,
)

MESSAGE = Message("n:1/initial/officer.li/wecom", "n:1", "initial", "critical", "【严重】业务告警 node.notice ×500",
                  "【严重】业务告警 node.notice ×500\n- 案件逾期")
OFFICER = Recipient("officer.li", "李干警", "officer", "13800000001", None)


def client_answering(status: int = 200, body: dict | None = None, seen: list | None = None) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body if body is not None else {})
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_wecom_text_mentions_the_person_by_mobile_or_userid():
    seen: list[httpx.Request] = []
    channel = WeComBotChannel(client_answering(body={"errcode": 0, "errmsg": "ok"}, seen=seen),
                              "https://qyapi.example/cgi-bin/webhook/send?key=k")
    await channel.send(MESSAGE, OFFICER)
    await channel.send(MESSAGE, Recipient("tech.chen", "陈工", "technician", "13800000011", "ChenGong"))
    first, second = (json.loads(r.content) for r in seen)
    assert first["msgtype"] == "text" and first["text"]["mentioned_mobile_list"] == ["13800000001"]
    assert first["text"]["content"].startswith(MESSAGE.text) and "值班执行干警" in first["text"]["content"]
    assert second["text"]["mentioned_list"] == ["ChenGong"] and "mentioned_mobile_list" not in second["text"]


async def test_wecom_errcode_is_a_failure_and_long_text_is_cut():
    channel = WeComBotChannel(client_answering(body={"errcode": 93000, "errmsg": "invalid webhook url"}), "https://x/y")
    with pytest.raises(DeliveryError, match="errcode=93000"):
        await channel.send(MESSAGE, OFFICER)
    seen: list[httpx.Request] = []
    ok = WeComBotChannel(client_answering(body={"errcode": 0}, seen=seen), "https://x/y")
    await ok.send(Message("d", "n", "initial", "warning", "t", "长" * 2000), OFFICER)
    assert len(json.loads(seen[0].content)["text"]["content"].encode()) <= WECOM_TEXT_MAX_BYTES


async def test_sms_sends_sign_and_title_and_reads_the_gateway_code():
    seen: list[httpx.Request] = []
    channel = SmsChannel(client_answering(body={"code": "0"}, seen=seen), "https://sms.example/send", "key", "某法院")
    await channel.send(MESSAGE, OFFICER)
    body = json.loads(seen[0].content)
    assert body["mobile"] == "13800000001" and body["content"].startswith("【某法院】【严重】")
    assert body["request_id"] == MESSAGE.delivery_id and seen[0].headers["Authorization"] == "Bearer key"
    refused = SmsChannel(client_answering(body={"code": "isv.BUSINESS_LIMIT", "message": "limit"}), "https://s/x")
    with pytest.raises(DeliveryError, match="BUSINESS_LIMIT"):
        await refused.send(MESSAGE, OFFICER)
    with pytest.raises(DeliveryError, match="no phone"):
        await channel.send(MESSAGE, Recipient("x", "x", "officer", None, None))


async def test_webhook_carries_an_idempotency_key_and_http_errors_fail_masked():
    seen: list[httpx.Request] = []
    channel = WebhookChannel(client_answering(seen=seen), "https://hook.example/in", "tok")
    await channel.send(MESSAGE, OFFICER)
    assert seen[0].headers["Idempotency-Key"] == MESSAGE.delivery_id
    assert json.loads(seen[0].content)["to"] == {"person": "officer.li", "name": "李干警", "role": "officer"}
    down = WebhookChannel(client_answering(status=502, body={"error": "call 13800000001"}), "https://hook.example/in")
    with pytest.raises(DeliveryError) as caught:
        await down.send(MESSAGE, OFFICER)
    assert "HTTP 502" in caught.value.reason and "13800000001" not in caught.value.reason


def test_only_configured_channels_are_built_and_secrets_come_from_files(tmp_path: Path):
    secret = tmp_path / "wecom-url"
    secret.write_text("https://qyapi.example/send?key=secret\n", encoding="utf-8")
    client = httpx.AsyncClient()
    built = build_channels(client, {"ECC_ONCALL_WECOM_URL_FILE": str(secret), "ECC_ONCALL_SMS_URL": "https://s/x"})
    assert set(built) == {"wecom", "sms"}
    assert built["wecom"].url == "https://qyapi.example/send?key=secret"  # type: ignore[attr-defined]
    assert build_channels(client, {}) == {}
