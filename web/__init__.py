"""The team web: the REST API, Socket.IO live feed and dashboard over the daemon's results.

``create_app`` (:mod:`web.app`) builds the Flask app from settings, one module per concern (auth,
api, uploads, sockets, models, health); :mod:`web.server` serves it. It reads the daemon's store
and queue, never the other way round.
"""
