"""dicomweb-client against single-part and empty answers: an encapsulated
PDF's bulk data (its BulkDataURI from /metadata) through the library
and as application/pdf (what OHIF asks), and a
search with no match. Prints one JSON object {passed: [...], failed: {...}}.
Usage: single_part_check.py CONFIG.json (dicomweb, holder, ca, pdf)"""

import json
import sys
import traceback

import requests
from dicomweb_client.api import DICOMwebClient

config = json.load(open(sys.argv[1]))
session = requests.Session()
session.verify = config["ca"]
session.trust_env = False
client = DICOMwebClient(
    url=config["dicomweb"],
    session=session,
    headers={"Authorization": f"Bearer {config['holder']}"},
    timeout=(10, 60),
)
client.set_http_retry_params(retry=False)
passed, failed = [], {}


def check(name, run):
    try:
        run()
        passed.append(name)
    except Exception:
        failed[name] = traceback.format_exc()


def pdf_bulkdata():
    want = open(config["pdf"], "rb").read()
    (study,) = client.search_for_studies()
    uid = study["0020000D"]["Value"][0]
    (meta,) = client.retrieve_study_metadata(uid)
    url = meta["00420011"]["BulkDataURI"]
    # the library asks bulk data as multipart octet-stream only: the value
    # as stored, the PDF and its pad byte
    (got,) = client.retrieve_bulkdata(url, media_types=("application/octet-stream",))
    assert got[: len(want)] == want and len(got) == len(want) + 1, f"{len(got)} bytes"
    # what OHIF does with singlepart 'pdf': a plain GET naming the type
    reply = session.get(
        url,
        headers={"Authorization": f"Bearer {config['holder']}", "Accept": "application/pdf"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/pdf", reply.headers
    assert reply.content == want


def empty_search():
    assert client.search_for_series(search_filters={"Modality": "XX"}) == []
    assert client.search_for_studies(search_filters={"PatientID": "nobody"}) == []


check("pdf_bulkdata", pdf_bulkdata)
check("empty_search", empty_search)
print(json.dumps({"passed": passed, "failed": failed}))
sys.exit(1 if failed else 0)
