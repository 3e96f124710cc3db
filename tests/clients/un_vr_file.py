"""Writes a copy of a native CT file, Explicit VR Little Endian, in which
identifying attributes are sent with VR UN (as a node that did not know
them would forward them, PS3.5 6.2.2): study and series UIDs (not the
SOP Instance UID, which storescu reads to address the C-STORE), patient name (Latin-1,
with Specific Character Set ISO_IR 100), patient ID, dates, modality and
Rows. Usage: un_vr_file.py SOURCE DEST STUDY_UID SERIES_UID SOP_UID"""

import struct
import sys

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

source, dest, study, series, sop = sys.argv[1:6]
ds = pydicom.dcmread(source)
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.file_meta.MediaStorageSOPInstanceUID = sop
ds.SpecificCharacterSet = "ISO_IR 100"


def text(value, pad=b" "):
    raw = value.encode("latin-1")
    return raw + pad if len(raw) % 2 else raw


values = {
    0x0020000D: text(study, b"\0"),
    0x0020000E: text(series, b"\0"),
    0x00100010: text("Müller^Jörg"),
    0x00100020: text("UNVR-0001"),
    0x00080020: text("20240229"),
    0x00100030: text("19700101"),
    0x00080060: text("CT"),
    0x00280010: struct.pack("<H", ds.Rows),
}
# raw elements, so that pydicom writes them as UN instead of by the
# dictionary (which it would otherwise do)
pydicom.config.replace_un_with_known_vr = False
for tag, raw in values.items():
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), "UN", len(raw), raw, 0, False, True)
ds.save_as(dest, enforce_file_format=True)
