"""dotdyn-pipeline: the integration middleware between Dynamics 365 (Dataverse) and Dotdigital."""

__version__ = "0.1.0"
