"""Monitoring: live model performance, the sensors and schedules that decide when to retrain, alerts, reports."""
