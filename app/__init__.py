"""Crowdlab web application."""
