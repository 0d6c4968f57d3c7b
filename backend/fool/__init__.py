"""fool"""
