"""Files behind URIs (``hdfs://``, ``s3a://``, ``abfss://``, ``gs://``, ``dbfs:/``,
``file://``) through the Hadoop FileSystem API of a Spark session.

The Spark engine reads and writes cluster storage with this store, so a URI reaches Spark
untouched and the run skeleton (:class:`leadml.scoring.run.Run`) does its existence checks,
temporaries, commit and manifest on the store the data lives on. How atomic the commit is
depends on the store's ``rename``: atomic on HDFS, ABFS with hierarchical namespaces and
local disks; a copy then delete on S3 and GCS (see docs/spark.md).
"""

from __future__ import annotations

import logging
import uuid

from leadml.data.tables import json_text
from leadml.errors import LeadDataError, OutputError

logger = logging.getLogger(__name__)


class HadoopStore:
    """The :class:`leadml.scoring.run.LocalStore` operations on the session's Hadoop FileSystem.

    There is no lock across machines on object storage: one writer per ``OUT`` is the
    scheduler's job, as it is for any Spark job writing a path.
    """

    def __init__(self, spark):
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _fs(self, uri: str):
        hadoop = self._jvm.org.apache.hadoop.fs
        path = hadoop.Path(uri)
        if is_local(uri):  # the raw local disk: no .crc side files beside a manifest
            return hadoop.FileSystem.getLocal(self._conf).getRawFileSystem(), path
        return path.getFileSystem(self._conf), path

    # -- questions -----------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        fs, path = self._fs(uri)
        return bool(fs.exists(path))

    def is_dir(self, uri: str) -> bool:
        fs, path = self._fs(uri)
        return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())

    def data_files(self, uri: str) -> list[str]:
        """The file itself, or a folder's data files (names not starting with . or _)."""
        fs, path = self._fs(uri)
        if not fs.exists(path):
            raise LeadDataError(f"input '{uri}' does not exist; check the URI (and that "
                                "tonight's export has arrived)")
        if not fs.getFileStatus(path).isDirectory():
            return [uri]
        found, walk = [], fs.listFiles(path, True)
        while walk.hasNext():
            child = walk.next().getPath()
            if not child.getName().startswith((".", "_")):
                found.append(str(child.toString()))
        if not found:
            raise LeadDataError(f"input folder '{uri}' holds no data files")
        return sorted(found)

    def is_parquet(self, uri: str) -> bool:
        """A Parquet file by its extension, or a folder of Parquet parts."""
        suffixes = (".parquet", ".pq")
        if uri.rstrip("/").lower().endswith(suffixes):
            return True
        return self.is_dir(uri) and any(f.lower().endswith(suffixes)
                                        for f in self.data_files(uri))

    def checksum(self, uri: str) -> str | None:
        """The store's own checksum of a file (HDFS: MD5 of CRCs), when it keeps one."""
        fs, path = self._fs(uri)
        if fs.getFileStatus(path).isDirectory():
            return None
        found = fs.getFileChecksum(path)
        if found is None:
            return None
        return f"{found.getAlgorithmName()}:{bytes(found.getBytes()).hex()}"

    # -- the run skeleton's operations (see leadml.scoring.run.LocalStore) ----------------------
    def lock(self, out: str):
        fs, path = self._fs(out)
        try:
            fs.mkdirs(path.getParent())
        except Exception as exc:
            raise _output_error(exc, out) from None
        return _NoLock()

    def leftovers(self, target: str) -> list[str]:
        fs, path = self._fs(target)
        pattern = self._jvm.org.apache.hadoop.fs.Path(path.getParent(),
                                                      f".{path.getName()}.*.tmp")
        return [str(s.getPath().toString()) for s in (fs.globStatus(pattern) or [])]

    def temp(self, target: str) -> str:
        parent, name = target.rstrip("/").rsplit("/", 1)
        return f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.tmp"

    def remove(self, uri: str) -> None:
        fs, path = self._fs(uri)
        if fs.exists(path):
            fs.delete(path, True)

    def publish(self, tmp: str, target: str) -> None:
        """Rename a finished temporary onto ``target`` (which :meth:`remove` cleared: a
        Hadoop rename onto an existing folder would move it inside)."""
        fs, src = self._fs(tmp)
        _, dst = self._fs(target)
        if fs.exists(dst):
            fs.delete(dst, True)
        try:
            renamed = fs.rename(src, dst)
        except Exception as exc:
            raise _output_error(exc, target) from None
        if not renamed:
            raise OutputError(f"the store refused to rename '{tmp}' to '{target}'; nothing "
                              f"was left at '{target}'. Check permissions on its folder")

    def write_json(self, data: dict, uri: str) -> None:
        """Write beside, then rename into place: a reader never sees half a manifest."""
        text = json_text(data)
        tmp = self.temp(uri)
        fs, path = self._fs(tmp)
        try:
            stream = fs.create(path, True)
            try:
                stream.write(bytearray(text.encode()))
            finally:
                stream.close()
        except Exception as exc:
            self.remove(tmp)
            raise _output_error(exc, uri) from None
        self.publish(tmp, uri)


class _NoLock:
    def close(self) -> None:
        pass


def _output_error(exc: Exception, target: str) -> OutputError:
    return OutputError(f"cannot write '{target}': {str(exc).splitlines()[0][:300]}. Nothing "
                       "was left there; check the store's permissions and space, or choose "
                       "another --output")


def is_local(uri: str) -> bool:
    return uri.startswith("file:")


def local_path(uri: str) -> str:
    """The path of a ``file:`` URI on this machine."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)
