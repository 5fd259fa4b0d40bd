"""The versioned retraining configuration asset."""
