"""pushgate as seen by the `dicomweb-client` library (PyPI), a DICOMweb
client nobody here wrote.

Called by tests/clients.rs with a JSON file that says where the daemon is
and which grants it made:

    python dicomweb_client_check.py CONFIG.json PART

CONFIG: {"ca": PEM file that signed the daemon's certificate,
         "samples": the sample-dicom directory,
         "grants": {NAME: {"dicomweb": the link's DICOMweb root URL,
                           "holder": the holder token}}}

PART names the group of checks to run (see PARTS below). Every check runs
even after one failed; the script prints one JSON object,
{"passed": [names], "failed": {name: reason}}, and exits 1 if any failed.
"""

import io
import json
import sys
import traceback
from pathlib import Path

import numpy as np
import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.encaps import generate_frames

STORED = (("application/dicom", "*"),)
EXPLICIT_LE = "1.2.840.10008.1.2.1"


class Checks:
    def __init__(self):
        self.passed = []
        self.failed = {}
        self.facts = {}

    def run(self, name, fn, *args):
        try:
            fn(*args)
            self.passed.append(name)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            self.failed[name] = detail[:2000]


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def not_found(fn, *args, **kwargs):
    """The call must fail with 404 (out of scope looks like nothing), or,
    for a search, find nothing."""
    try:
        result = fn(*args, **kwargs)
    except requests.HTTPError as e:
        expect(
            e.response is not None and e.response.status_code == 404,
            f"expected 404, got {e}",
        )
        return
    expect(result in ([], None), f"expected nothing, got {str(result)[:300]}")


class Samples:
    """The sample files, read with pydicom, by SOP Instance UID."""

    def __init__(self, root):
        self.by_sop = {}
        for path in sorted(Path(root).rglob("*.dcm")):
            ds = pydicom.dcmread(path)
            self.by_sop[ds.SOPInstanceUID] = (path, ds)

    def where(self, folder, modality=None):
        return [
            ds
            for path, ds in self.by_sop.values()
            if path.parent.name == folder
            and (modality is None or ds.Modality == modality)
        ]

    def study(self, folder):
        uids = {ds.StudyInstanceUID for ds in self.where(folder)}
        expect(len(uids) == 1, f"{folder}: one study")
        return uids.pop()

    def ds(self, sop):
        return self.by_sop[sop][1]


def client_for(config, name):
    grant = config["grants"][name]
    session = requests.Session()
    # The test daemon's certificate is self-signed (localhost, 127.0.0.1 in
    # its subjectAltName): trust exactly that certificate, verify as usual.
    session.verify = config["ca"]
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment
    # override session.verify; nothing here should come from there
    session.trust_env = False
    client = DICOMwebClient(
        url=grant["dicomweb"],
        session=session,
        headers={"Authorization": f"Bearer {grant['holder']}"},
        timeout=(10, 60),
    )
    # a refusal must show at once, not after exponential back-off
    client.set_http_retry_params(retry=False)
    return client


def texts(sequence):
    """Every TextValue in an SR content tree."""
    for item in sequence:
        if "TextValue" in item:
            yield item.TextValue
        if "ContentSequence" in item:
            yield from texts(item.ContentSequence)


def uid_of(result, tag):
    return result[tag]["Value"][0]


def same_dataset(got, want, label):
    """Every element of `want` is in `got` with the same value, and nothing
    else is (pydicom's element-by-element comparison, pixel data included),
    in the transfer syntax it was stored in."""
    expect(
        got.file_meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID,
        f"{label}: transfer syntax {got.file_meta.TransferSyntaxUID} != "
        f"{want.file_meta.TransferSyntaxUID}",
    )
    if got != want:
        tags = set(got.keys()) | set(want.keys())
        diff = [
            str(t)
            for t in sorted(tags)
            if t not in got or t not in want or got[t] != want[t]
        ]
        raise AssertionError(f"{label}: elements differ: {diff[:20]}")
    expect(
        bytes(got.PixelData if "PixelData" in got else b"")
        == bytes(want.PixelData if "PixelData" in want else b""),
        f"{label}: pixel data bytes differ",
    )


# --- the CT study shared without its presentation state (PR) -------------


def ct_scope(config, samples, checks):
    """QIDO-RS through the library: exactly the covered study, series and
    instances; neither the left-out PR nor any other study on the daemon."""
    client = client_for(config, "ct")
    study = samples.study("ct-phantom")
    covered = [ds for ds in samples.where("ct-phantom") if ds.Modality != "PR"]
    pr = samples.where("ct-phantom", "PR")[0]
    covered_series = {ds.SeriesInstanceUID for ds in covered}
    covered_sops = {ds.SOPInstanceUID for ds in covered}

    def studies():
        found = client.search_for_studies()
        expect(
            [uid_of(s, "0020000D") for s in found] == [study],
            f"studies: {[uid_of(s, '0020000D') for s in found]}",
        )
        s = found[0]
        expect(
            s["00100010"]["Value"][0]["Alphabetic"].startswith("Jansen^Anna"),
            f"patient name {s.get('00100010')}",
        )
        # NumberOfStudyRelatedInstances counts what is shared
        if "00201208" in s:
            expect(
                s["00201208"]["Value"][0] == len(covered),
                f"related instances {s['00201208']}",
            )

    def studies_by_patient():
        found = client.search_for_studies(search_filters={"PatientName": "Jansen*"})
        expect(len(found) == 1, f"Jansen*: {len(found)} studies")
        # the MR study of another patient is on the daemon, but not shared
        found = client.search_for_studies(search_filters={"PatientName": "M*ller*"})
        expect(found == [], f"M*ller*: {found}")
        found = client.search_for_studies(
            search_filters={"StudyInstanceUID": samples.study("mr-brain")}
        )
        expect(found == [], f"MR by UID: {found}")

    def series():
        for found in (client.search_for_series(study), client.search_for_series()):
            got = {uid_of(s, "0020000E") for s in found}
            expect(got == covered_series, f"series {got} != {covered_series}")
            expect(
                all(s["00080060"]["Value"][0] != "PR" for s in found),
                "no PR series",
            )
        found = client.search_for_series(search_filters={"Modality": "PR"})
        expect(found == [], f"PR series: {found}")

    def instances():
        for found in (
            client.search_for_instances(study),
            client.search_for_instances(),
        ):
            got = {uid_of(i, "00080018") for i in found}
            expect(got == covered_sops, f"{len(got)} instances, not the 17 covered")
        not_found(
            client.search_for_instances,
            study_instance_uid=study,
            series_instance_uid=pr.SeriesInstanceUID,
        )
        found = client.search_for_instances(
            study, search_filters={"SOPInstanceUID": pr.SOPInstanceUID}
        )
        expect(found == [], f"the PR by UID: {found}")

    def retrieval_refused():
        not_found(
            client.retrieve_instance,
            study,
            pr.SeriesInstanceUID,
            pr.SOPInstanceUID,
            media_types=STORED,
        )
        not_found(client.retrieve_series, study, pr.SeriesInstanceUID, media_types=STORED)
        not_found(client.retrieve_instance_metadata, study, pr.SeriesInstanceUID, pr.SOPInstanceUID)
        not_found(client.retrieve_study, samples.study("mr-brain"), media_types=STORED)
        not_found(client.retrieve_study_metadata, samples.study("mr-brain"))
        metadata = client.retrieve_study_metadata(study)
        expect(
            {uid_of(m, "00080018") for m in metadata} == covered_sops,
            "study metadata covers exactly the shared instances",
        )

    checks.run("qido_studies", studies)
    checks.run("qido_studies_by_patient", studies_by_patient)
    checks.run("qido_series", series)
    checks.run("qido_instances", instances)
    checks.run("scope_retrieval_refused", retrieval_refused)


def ct_retrieve(config, samples, checks):
    """WADO-RS through the library: the study, a series and instances as
    stored (transfer-syntax=*), and an instance in the default syntax."""
    client = client_for(config, "ct")
    study = samples.study("ct-phantom")
    covered = [ds for ds in samples.where("ct-phantom") if ds.Modality != "PR"]
    ct = [ds for ds in covered if ds.Modality == "CT"]

    def whole_study():
        got = client.retrieve_study(study, media_types=STORED)
        expect(len(got) == len(covered), f"{len(got)} instances, not {len(covered)}")
        seen = set()
        for ds in got:
            sop = ds.SOPInstanceUID
            expect(sop in {c.SOPInstanceUID for c in covered}, f"{sop} is not shared")
            same_dataset(ds, samples.ds(sop), sop)
            seen.add(sop)
        expect(len(seen) == len(covered), "each instance once")

    def one_series():
        got = client.retrieve_series(study, ct[0].SeriesInstanceUID, media_types=STORED)
        expect(len(got) == len(ct), f"{len(got)} CT instances")
        for ds in got:
            same_dataset(ds, samples.ds(ds.SOPInstanceUID), ds.SOPInstanceUID)

    def instances_as_stored():
        for want in covered:
            ds = client.retrieve_instance(
                study, want.SeriesInstanceUID, want.SOPInstanceUID, media_types=STORED
            )
            same_dataset(ds, want, want.SOPInstanceUID)

    def instance_default_and_explicit_le():
        want = ct[10]
        args = (study, want.SeriesInstanceUID, want.SOPInstanceUID)
        # the library's default asks for any syntax (transfer-syntax=*):
        # the stored one, which pydicom decodes
        ds = client.retrieve_instance(*args)
        same_dataset(ds, want, "default")
        pixels = ds.pixel_array
        expect(pixels.shape == (want.Rows, want.Columns), f"shape {pixels.shape}")
        expect(np.array_equal(pixels, want.pixel_array), "decoded pixels differ")
        ds = client.retrieve_instance(*args, media_types=(("application/dicom", EXPLICIT_LE),))
        expect(ds.file_meta.TransferSyntaxUID == EXPLICIT_LE, "Explicit VR LE")
        expect(np.array_equal(ds.pixel_array, want.pixel_array), "Explicit VR LE pixels differ")
        # the SR has no pixels and comes back whole, its UTF-8 text intact
        sr = [d for d in covered if d.Modality == "SR"][0]
        ds = client.retrieve_instance(study, sr.SeriesInstanceUID, sr.SOPInstanceUID)
        expect(ds.ContentSequence == sr.ContentSequence, "SR content differs")
        expect(
            any("intracraniële" in t for t in texts(ds.ContentSequence)),
            f"UTF-8 text: {texts(ds.ContentSequence)}",
        )

    checks.run("retrieve_study_as_stored", whole_study)
    checks.run("retrieve_series_as_stored", one_series)
    checks.run("retrieve_instances_as_stored", instances_as_stored)
    checks.run("retrieve_instance_default_and_explicit_le", instance_default_and_explicit_le)


def other_syntaxes(config, samples, checks):
    """Stored syntaxes other than Explicit VR LE: the default retrieve gives
    Explicit VR LE that pydicom decodes to the same image."""

    def mr_implicit():
        client = client_for(config, "mr")
        want = samples.where("mr-brain")[4]
        study = want.StudyInstanceUID
        args = (study, want.SeriesInstanceUID, want.SOPInstanceUID)
        # the library's default: as stored (Implicit VR), decoded by pydicom
        ds = client.retrieve_instance(*args)
        same_dataset(ds, want, "MR as stored")
        expect(str(ds.PatientName) == "Müller^Jörg", f"name {ds.PatientName!r}")
        # asked for Explicit VR LE: re-encoded, the same pixels and names
        ds = client.retrieve_instance(*args, media_types=(("application/dicom", EXPLICIT_LE),))
        expect(
            ds.file_meta.TransferSyntaxUID == EXPLICIT_LE,
            f"asked Explicit VR LE, got {ds.file_meta.TransferSyntaxUID}",
        )
        expect(np.array_equal(ds.pixel_array, want.pixel_array), "MR pixels differ")
        expect(str(ds.PatientName) == "Müller^Jörg", f"name {ds.PatientName!r}")
        got = client.retrieve_study(study, media_types=STORED)
        expect(len(got) == 10, f"{len(got)} MR instances")
        for ds in got:
            same_dataset(ds, samples.ds(ds.SOPInstanceUID), ds.SOPInstanceUID)

    def us_jpeg():
        client = client_for(config, "us")
        want = samples.where("jpeg")[0]
        study = want.StudyInstanceUID
        args = (study, want.SeriesInstanceUID, want.SOPInstanceUID)
        # the library's default: the JPEG as stored, pydicom decodes it
        stored = client.retrieve_instance(*args)
        same_dataset(stored, want, "US as stored")
        expect(np.array_equal(stored.pixel_array, want.pixel_array), "JPEG decoded alike")
        # asked for Explicit VR LE: pushgate decodes the JPEG
        ds = client.retrieve_instance(*args, media_types=(("application/dicom", EXPLICIT_LE),))
        expect(
            ds.file_meta.TransferSyntaxUID == EXPLICIT_LE,
            f"asked Explicit VR LE, got {ds.file_meta.TransferSyntaxUID}",
        )
        got, ref = ds.pixel_array.astype(int), want.pixel_array.astype(int)
        expect(got.shape == (want.Rows, want.Columns), f"shape {got.shape}")
        # two JPEG decoders (pushgate's and Pillow's libjpeg) may round
        # differently by a level or so; the image is the same
        diff = np.abs(got - ref)
        expect(diff.max() <= 4 and diff.mean() < 0.5, f"max {diff.max()} mean {diff.mean()}")
        checks.facts["us_jpeg_decoder_difference"] = {"max": int(diff.max()), "mean": float(diff.mean())}

    def xa_multiframe():
        client = client_for(config, "xa")
        want = samples.where("multiframe")[0]
        study = want.StudyInstanceUID
        got = client.retrieve_study(study, media_types=STORED)
        expect(len(got) == 1, f"{len(got)} instances")
        same_dataset(got[0], want, "XA as stored")
        expect(int(got[0].NumberOfFrames) == 20, "20 frames")

    checks.run("mr_implicit_vr_as_stored_and_explicit_le", mr_implicit)
    checks.run("us_jpeg_as_stored_and_decoded", us_jpeg)
    checks.run("xa_multiframe_as_stored", xa_multiframe)


def metadata_bulkdata(config, samples, checks):
    """Metadata, then the BulkDataURIs it names, fetched by the library:
    the data set rebuilt from both equals the file."""
    client = client_for(config, "ct")
    study = samples.study("ct-phantom")
    covered = [ds for ds in samples.where("ct-phantom") if ds.Modality != "PR"]

    def study_metadata():
        metadata = client.retrieve_study_metadata(study)
        expect(len(metadata) == len(covered), f"{len(metadata)} instances")
        fetched = 0
        for m in metadata:
            sop = uid_of(m, "00080018")
            want = samples.ds(sop)
            if "7FE00010" in m:
                uri = m["7FE00010"].get("BulkDataURI")
                expect(uri is not None, f"{sop}: pixel data by BulkDataURI")
                expect(uri.startswith(config["grants"]["ct"]["dicomweb"] + "/"), uri)
                parts = client.retrieve_bulkdata(uri)
                expect(len(parts) == 1, f"{len(parts)} parts")
                expect(parts[0] == want.PixelData, f"{sop}: bulk data differs")
                fetched += 1

            def handler(tag, vr, uri):
                return bytes(client.retrieve_bulkdata(uri)[0])

            rebuilt = pydicom.Dataset.from_json(m, bulk_data_uri_handler=handler)
            for elem in want:
                # group lengths are not part of DICOM JSON
                if elem.tag.element == 0:
                    continue
                expect(elem.tag in rebuilt, f"{sop}: {elem.tag} missing")
                got = rebuilt[elem.tag]
                if elem.VR in ("OB", "OW", "OB or OW", "UN"):
                    expect(bytes(got.value) == bytes(elem.value), f"{sop}: {elem.tag} bytes")
                elif elem.VR in ("DS", "IS", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV"):
                    # DICOM JSON has numbers: 68 and "68.0" are one value
                    def numbers(v):
                        values = v if isinstance(v, (list, pydicom.multival.MultiValue)) else [v]
                        return [float(x) for x in values if x not in (None, "")]

                    expect(
                        numbers(got.value) == numbers(elem.value),
                        f"{sop}: {elem.tag} {got.value!r} != {elem.value!r}",
                    )
                elif elem.VR == "SQ":
                    expect(len(got.value) == len(elem.value), f"{sop}: {elem.tag} items")
                else:
                    expect(
                        str(got.value) == str(elem.value),
                        f"{sop}: {elem.tag} {got.value!r} != {elem.value!r}",
                    )
        expect(fetched == len(covered) - 1, f"pixel data of {fetched} instances")

    def series_and_instance_metadata():
        ct = [ds for ds in covered if ds.Modality == "CT"]
        metadata = client.retrieve_series_metadata(study, ct[0].SeriesInstanceUID)
        expect(len(metadata) == len(ct), f"{len(metadata)} in the CT series")
        one = client.retrieve_instance_metadata(
            study, ct[3].SeriesInstanceUID, ct[3].SOPInstanceUID
        )
        expect(uid_of(one, "00080018") == ct[3].SOPInstanceUID, "that instance")
        expect(one["00280010"]["Value"][0] == ct[3].Rows, "Rows")

    checks.run("metadata_then_bulkdata", study_metadata)
    checks.run("series_and_instance_metadata", series_and_instance_metadata)


def frames(config, samples, checks):
    """retrieve_instance_frames: native frames equal the pixel data, a
    multi-frame instance gives the frames asked for, a JPEG instance its
    own bitstream or the decoded frame."""

    def ct_frame():
        client = client_for(config, "ct")
        want = [ds for ds in samples.where("ct-phantom") if ds.Modality == "CT"][0]
        args = (want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID, [1])
        for media_types in (None, ("application/octet-stream",)):
            got = client.retrieve_instance_frames(*args, media_types=media_types)
            expect(len(got) == 1, f"{media_types}: {len(got)} frames")
            expect(got[0] == want.PixelData, f"{media_types}: frame 1 differs")

    def mr_frame():
        client = client_for(config, "mr")
        want = samples.where("mr-brain")[0]
        got = client.retrieve_instance_frames(
            want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID, [1],
            media_types=("application/octet-stream",),
        )
        expect(got == [want.PixelData], "MR frame 1 differs")

    def xa_frames():
        client = client_for(config, "xa")
        want = samples.where("multiframe")[0]
        size = want.Rows * want.Columns * (want.BitsAllocated // 8) * want.SamplesPerPixel
        got = client.retrieve_instance_frames(
            want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID, [1, 7, 20],
            media_types=("application/octet-stream",),
        )
        expect(len(got) == 3, f"{len(got)} frames")
        for frame, data in zip((1, 7, 20), got):
            expect(
                data == want.PixelData[(frame - 1) * size : frame * size],
                f"frame {frame} differs",
            )

    def us_jpeg_frame():
        client = client_for(config, "us")
        want = samples.where("jpeg")[0]
        args = (want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID, [1])
        got = client.retrieve_instance_frames(
            *args, media_types=(("image/jpeg", "1.2.840.10008.1.2.4.50"),)
        )
        stored = next(generate_frames(want.PixelData, number_of_frames=1))
        expect(len(got) == 1, f"{len(got)} parts")
        # JPEG fragments may carry one byte of padding after EOI
        expect(
            got[0] == stored or got[0] == stored.rstrip(b"\x00"),
            "the JPEG bitstream as stored",
        )
        expect(Image.open(io.BytesIO(got[0])).size == (want.Columns, want.Rows), "JPEG size")
        decoded = client.retrieve_instance_frames(
            *args, media_types=("application/octet-stream",)
        )
        expect(len(decoded[0]) == want.Rows * want.Columns, f"{len(decoded[0])} bytes")

    def frame_out_of_range():
        client = client_for(config, "xa")
        want = samples.where("multiframe")[0]
        try:
            client.retrieve_instance_frames(
                want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID, [21],
                media_types=("application/octet-stream",),
            )
        except requests.HTTPError as e:
            expect(e.response.status_code in (400, 404), f"{e}")
            return
        raise AssertionError("frame 21 of 20 was served")

    def pr_frames_refused():
        client = client_for(config, "ct")
        pr = samples.where("ct-phantom", "PR")[0]
        not_found(
            client.retrieve_instance_frames,
            pr.StudyInstanceUID, pr.SeriesInstanceUID, pr.SOPInstanceUID, [1],
            media_types=("application/octet-stream",),
        )

    checks.run("frames_ct_native", ct_frame)
    checks.run("frames_mr_implicit", mr_frame)
    checks.run("frames_xa_multiframe", xa_frames)
    checks.run("frames_us_jpeg", us_jpeg_frame)
    checks.run("frames_out_of_range", frame_out_of_range)
    checks.run("frames_out_of_scope", pr_frames_refused)


def rendered(config, samples, checks):
    """retrieve_instance_rendered as JPEG and PNG: Pillow opens them, and
    they have the instance's Rows × Columns."""

    def render(name, want, media_type, fmt, frame=None):
        client = client_for(config, name)
        args = (want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID)
        if frame is None:
            data = client.retrieve_instance_rendered(*args, media_types=(media_type,))
        else:
            data = client.retrieve_instance_frames_rendered(
                *args, frame_numbers=[frame], media_types=(media_type,)
            )
        image = Image.open(io.BytesIO(data))
        image.load()
        expect(image.format == fmt, f"{media_type}: format {image.format}")
        expect(
            image.size == (want.Columns, want.Rows),
            f"{media_type}: {image.size} is not {want.Columns}×{want.Rows}",
        )
        pixels = np.asarray(image.convert("L"), dtype=int)
        expect(pixels.max() > pixels.min(), f"{media_type}: a blank image")
        return pixels

    ct = [ds for ds in samples.where("ct-phantom") if ds.Modality == "CT"][10]
    us = samples.where("jpeg")[0]
    xa = samples.where("multiframe")[0]

    def ct_jpeg_and_png():
        jpeg = render("ct", ct, "image/jpeg", "JPEG")
        png = render("ct", ct, "image/png", "PNG")
        # the same rendering, once lossy
        expect(np.abs(jpeg - png).mean() < 8, "JPEG and PNG show the same image")

    checks.run("rendered_ct", ct_jpeg_and_png)
    checks.run("rendered_us_jpeg", lambda: (render("us", us, "image/jpeg", "JPEG"), render("us", us, "image/png", "PNG")))
    checks.run("rendered_xa_frame", lambda: render("xa", xa, "image/png", "PNG", frame=10))

    def pr_not_rendered():
        client = client_for(config, "ct")
        pr = samples.where("ct-phantom", "PR")[0]
        not_found(
            client.retrieve_instance_rendered,
            pr.StudyInstanceUID, pr.SeriesInstanceUID, pr.SOPInstanceUID,
            media_types=("image/png",),
        )

    checks.run("rendered_out_of_scope", pr_not_rendered)


PARTS = {
    "scope": ct_scope,
    "retrieve": ct_retrieve,
    "syntaxes": other_syntaxes,
    "metadata": metadata_bulkdata,
    "frames": frames,
    "rendered": rendered,
}


def main():
    config = json.loads(Path(sys.argv[1]).read_text())
    part = sys.argv[2]
    samples = Samples(config["samples"])
    checks = Checks()
    PARTS[part](config, samples, checks)
    print(json.dumps({"passed": checks.passed, "failed": checks.failed, **checks.facts}))
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
