"""Scheduling, running and controlling reconciles."""
