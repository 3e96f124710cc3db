"""Writes a copy of a CT file whose patient name, study description and
series description carry what an attacker (or a careless modality) puts
in a data set: markup, template syntax, a right-to-left override, NULs,
ten kilobytes. UTF-8 (ISO_IR 192), Explicit VR Little Endian, new UIDs.
Usage: hostile_names.py SOURCE DEST STUDY_UID SERIES_UID SOP_UID"""

import sys
import warnings

import pydicom
from pydicom.uid import ExplicitVRLittleEndian

source, dest, study, series, sop = sys.argv[1:6]
# the values are invalid on purpose (too long, control characters)
pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
warnings.simplefilter("ignore")
ds = pydicom.dcmread(source)
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.file_meta.MediaStorageSOPInstanceUID = sop
ds.SpecificCharacterSet = "ISO_IR 192"
ds.StudyInstanceUID = study
ds.SeriesInstanceUID = series
ds.SOPInstanceUID = sop
ds.PatientName = '"><script>alert(1)</script>^\u202eAnna\x00 {{7*7}}'
ds.StudyDescription = "\"><img src=x onerror=alert(1)>\u202e" + "x" * 10_000
ds.SeriesDescription = "</li><iframe src=//evil>"
ds.save_as(dest, enforce_file_format=True)
