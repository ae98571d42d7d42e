"""Pure change-detection core: xarray in, disturbance polygons out.

No file, network, Prefect, Earth Engine or folium in here.
"""

from .baseline import Baseline, BaselineParams, seasonal_baseline
from .detect import (
    ALGORITHM_VERSION,
    CONFIDENCES,
    AnomalyCube,
    Confirmation,
    Detection,
    DetectorParams,
    anomaly_scores,
    confirm_anomalies,
    detect_changes,
    disturbance_polygons,
    grid_transform,
)
from .features import feature_stack, screen_bright_snow, snow_flag_contradicted, usable_looks

__all__ = [
    "ALGORITHM_VERSION", "CONFIDENCES", "AnomalyCube", "Baseline", "BaselineParams", "Confirmation",
    "Detection", "DetectorParams", "anomaly_scores", "confirm_anomalies", "detect_changes",
    "disturbance_polygons", "feature_stack", "grid_transform", "screen_bright_snow", "seasonal_baseline",
    "snow_flag_contradicted", "usable_looks",
]
