"""{{name}}: a service connector. It calls an HTTP API on a domain listed in the manifest's
permissions.network_access.domains, with a token from the CHAT_API_TOKEN secret (never hard-coded).

Send {"dry_run": true} to see the request that would be made, without sending it.
"""

import json
import urllib.error
import urllib.request

from synapse_nb.sdk import BaseHandler

API_URL = "https://api.chat.example.com/v1/messages"
TOKEN_NAME = "CHAT_API_TOKEN"


class {{class_name}}(BaseHandler):
    def build_request(self, data, token):
        body = json.dumps({"channel": data["channel"], "text": data["text"]}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        return urllib.request.Request(API_URL, data=body, headers=headers, method="POST")

    def execute(self, validated_data):
        token = self.context.secrets.get(TOKEN_NAME)
        if validated_data.get("dry_run"):
            request = self.build_request(validated_data, "<redacted>")
            return {
                "sent": False,
                "request": {
                    "method": request.get_method(),
                    "url": request.full_url,
                    "body": json.loads(request.data),
                    "authorized": token is not None,
                },
            }
        if token is None:
            raise RuntimeError(f"{TOKEN_NAME} is not set: export it before running this plugin")
        try:
            with urllib.request.urlopen(self.build_request(validated_data, token), timeout=5) as response:
                return {"sent": True, "status": response.status, "response": json.loads(response.read() or b"null")}
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"chat API answered {exc.code} {exc.reason}") from None
