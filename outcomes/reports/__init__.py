"""Scheduled value-review reports (issue 13): schedules, rendering, delivery channels."""
