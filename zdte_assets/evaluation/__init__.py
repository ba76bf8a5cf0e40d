"""Forecast metrics and the tests that compare a forecast with the naive one."""
