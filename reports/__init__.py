"""Community reports: ingest, protect the reporter, reconcile with detections."""

from .ingest import ImportResult, Report, import_reports, write_rejected
from .privacy import load_key, pseudonymise
from .reconcile import OUTCOMES, ReconDetection, ReconItem, reconcile

__all__ = ["OUTCOMES", "ImportResult", "ReconDetection", "ReconItem", "Report", "import_reports", "load_key",
           "pseudonymise", "reconcile", "write_rejected"]
