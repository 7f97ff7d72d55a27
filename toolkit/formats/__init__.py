"""Data formats for training and inference code, one module each.

========================  ==============================================================
module                    what it reads and writes
========================  ==============================================================
``recordio``              dmlc/MXNet RecordIO records (multi-part aware), fast batch scans
``recordio_protobuf``     ``application/x-recordio-protobuf`` ↔ numpy / scipy CSR
``tfrecord``              TFRecord records with masked CRC-32C checks
``csv``                   label-first CSV (``label_size``) ↔ numpy
``jsonlines``             JSON Lines
``libsvm``                ``label[:weight] idx:val`` ↔ scipy CSR
``parquet``               Parquet via pyarrow (``optml[parquet]``)
``npy``                   NPY / NPZ, never unpickling
========================  ==============================================================

Every reader streams with bounded memory and raises :class:`toolkit.formats.errors.FormatError`
(naming the source and the byte offset or line) for malformed input. Import the module you need:
this package imports nothing heavy by itself. See docs/formats.md.
"""
