"""Early refusals over HTTP/2 with httpx (h2): each of 20 tries per case
must receive the status and the reason, not a reset stream.

Usage: h2_refusals_check.py BASE_URL BODY_FILE
"""

import sys

import httpx

CASES = [
    # path, extra headers, status, reason in the body
    ("/admin/v1/grants", {}, 401, "authorization required"),
    ("/redeem", {"Sec-Fetch-Site": "cross-site"}, 403, "another site"),
    ("/s/no-such-token-at-all", {}, 404, "not found"),
]


def main() -> int:
    base, body_file = sys.argv[1], sys.argv[2]
    with open(body_file, "rb") as f:
        body = f.read()
    received = 0
    for path, headers, status, reason in CASES:
        for n in range(20):
            # a source address per try: wrong admin tokens are limited per address
            transport = httpx.HTTPTransport(
                http2=True, verify=False, local_address=f"127.0.2.{10 + n}"
            )
            with httpx.Client(transport=transport, timeout=20) as client:
                response = client.post(
                    base + path,
                    content=body,
                    headers={"Content-Type": "application/json", **headers},
                )
            assert response.http_version == "HTTP/2", response.http_version
            assert response.status_code == status, (path, n, response.status_code)
            assert reason in response.json()["error"], (path, n, response.text)
            received += 1
    print(f"{received} refusals received over HTTP/2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
