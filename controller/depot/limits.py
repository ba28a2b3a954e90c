"""The size limit of request bodies: an ASGI middleware that refuses a body over
``max_request_bytes`` with 413 before the application reads it into memory - from its
Content-Length at once, or, for a body sent without one, as soon as the bytes received pass the
limit. Package uploads are streamed to disk and have their own limit (max_upload_bytes)."""

from __future__ import annotations

import json
import re

UPLOAD_PATH = re.compile(r"^/api/v1/packages/[^/]+/content$")


class BodySizeLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or UPLOAD_PATH.match(scope["path"]):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(send)
        received, refused = 0, False

        async def limited_receive():
            # Past the limit: answer 413 now, and tell the application the client went away, so it
            # stops reading; whatever it answers then is dropped.
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not refused:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send):
        body = json.dumps({"detail": f"the request body is larger than the limit of {self.max_bytes} bytes "
                                     "(DEPOT_MAX_REQUEST_BYTES); package content goes to the upload endpoint"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
