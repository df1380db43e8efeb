"""slack-notifier: posts messages with Slack's Web API method chat.postMessage.

POST https://slack.com/api/chat.postMessage with "Authorization: Bearer <bot token>" and a JSON body
{"channel", "text", "thread_ts"?}. Slack answers HTTP 200 with {"ok": true, "channel", "ts", "message"} or
{"ok": false, "error": "channel_not_found"}; 429 with Retry-After when rate limited. The token is the
SLACK_BOT_TOKEN secret; the only domain this plugin may reach is slack.com (spec.permissions). SLACK_API_BASE,
when a deployment lists it in spec.secrets, points the connector at another base URL (a test double), which the
manifest's domains must then allow as well.
"""

import json
import urllib.error
import urllib.request

from synapse.sdk import BaseHandler

DEFAULT_BASE = "https://slack.com/api"


class SlackNotifier(BaseHandler):
    def execute(self, validated_data):
        token = self.context.secrets.get("SLACK_BOT_TOKEN")
        if not token:
            raise RuntimeError("SLACK_BOT_TOKEN is not set: export the bot token before running this plugin")
        base = self.context.secrets.get("SLACK_API_BASE", DEFAULT_BASE).rstrip("/")
        body = {"channel": validated_data["channel"], "text": validated_data["text"]}
        if validated_data.get("thread_ts"):
            body["thread_ts"] = validated_data["thread_ts"]
        request = urllib.request.Request(
            f"{base}/chat.postMessage",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", "Authorization": f"Bearer {token}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                raise RuntimeError(f"Slack rate limit: retry after {exc.headers.get('Retry-After', '?')} s") from None
            raise RuntimeError(f"Slack answered HTTP {exc.code}") from None
        if not answer.get("ok"):
            raise RuntimeError(f"Slack refused the message: {answer.get('error', 'unknown error')}")
        return {"ok": True, "channel": answer.get("channel", ""), "ts": answer.get("ts", "")}
