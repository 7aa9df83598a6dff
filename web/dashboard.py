"""(filled in by the web issue work)"""
from flask import Blueprint

blueprint = Blueprint("dashboard", __name__)
