"""Community reports: ingest, protect the reporter, reconcile with detections."""

from .ingest import ImportResult, Report, import_reports, rejected_file, write_rejected
from .privacy import load_key, pseudonymise
from .reconcile import OUTCOMES, ReconDetection, ReconItem, reconcile

__all__ = ["OUTCOMES", "ImportResult", "ReconDetection", "ReconItem", "Report", "import_reports", "load_key",
           "pseudonymise", "reconcile", "rejected_file", "write_rejected"]
