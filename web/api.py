"""(filled in by the web issue work)"""
from flask import Blueprint

blueprint = Blueprint("api", __name__)
