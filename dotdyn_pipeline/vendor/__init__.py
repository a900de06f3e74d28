"""Vendor artefacts shipped unchanged: Dotdigital's v2 SOAP WSDL and its official v2 REST description.

The client builds its SOAP proxy from the WSDL (with the endpoint address as configuration); the sandbox
serves the same WSDL with its own address and answers REST calls as the swagger describes them.
"""

from pathlib import Path

DOTDIGITAL_WSDL = Path(__file__).parent / "dotdigital" / "ApiService.wsdl"
DOTDIGITAL_SWAGGER = Path(__file__).parent / "dotdigital" / "v2-api-swagger.json"
