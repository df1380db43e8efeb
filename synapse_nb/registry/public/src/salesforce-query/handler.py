"""salesforce-query: runs a SOQL query with the Salesforce REST API.

GET {instance}/services/data/v{api}/query?q=<SOQL> with "Authorization: Bearer <access token>". The answer is
{"totalSize", "done", "records": [{"attributes": {"type", "url"}, ...fields}], "nextRecordsUrl"?}; while "done"
is false the next page is GET {instance}{nextRecordsUrl}. Errors come as a list [{"message", "errorCode"}]
(401 INVALID_SESSION_ID, 400 MALFORMED_QUERY...). The instance URL and token are the SALESFORCE_INSTANCE_URL and
SALESFORCE_ACCESS_TOKEN secrets; the plugin may reach only *.my.salesforce.com (spec.permissions).
"""

import json
import urllib.error
import urllib.parse
import urllib.request

from synapse.sdk import BaseHandler

MAX_PAGES = 50


class SalesforceQuery(BaseHandler):
    def get(self, url, token):
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                problems = json.loads(exc.read())
                detail = "; ".join(f"{p.get('errorCode')}: {p.get('message')}" for p in problems)
            except (ValueError, TypeError, AttributeError):
                detail = exc.reason
            raise RuntimeError(f"Salesforce answered HTTP {exc.code}: {detail}") from None

    def execute(self, validated_data):
        instance = self.context.secrets.get("SALESFORCE_INSTANCE_URL", "").rstrip("/")
        token = self.context.secrets.get("SALESFORCE_ACCESS_TOKEN")
        if not instance or not token:
            raise RuntimeError("SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN must be set")
        if urllib.parse.urlsplit(instance).scheme not in ("https", "http"):
            raise RuntimeError("SALESFORCE_INSTANCE_URL must be an https:// URL")
        limit = validated_data.get("max_records", 2000)
        query = urllib.parse.urlencode({"q": validated_data["soql"]})
        page = self.get(f"{instance}/services/data/v{validated_data.get('api_version', '59.0')}/query?{query}", token)
        records, pages = [], 1
        while True:
            for record in page.get("records", []):
                records.append({k: v for k, v in record.items() if k != "attributes"})
            if page.get("done", True) or len(records) >= limit or pages >= MAX_PAGES:
                break
            page = self.get(instance + page["nextRecordsUrl"], token)
            pages += 1
        return {"total_size": page.get("totalSize", len(records)), "records": records[:limit], "pages": pages}
