"""Local, faithful stand-ins for the Microsoft identity platform, the Dataverse Web API and Dotdigital.

Nothing outside `sandbox/`, `cli.py`, `bench/` and the tests imports this package, and it imports nothing from
`connectors/`: each side is written from the vendors' documents on its own, so the tests between them can
tell when one of them is wrong.
"""
