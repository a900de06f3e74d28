"""The Dagster type of an asset's frame of a pandera model: checked on output, unless its step checked it."""

import warnings
import weakref

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from dagster_pandera import pandera_schema_to_dagster_type


class ModelFrameType:
    """dagster-pandera's type for `model` (the UI shows the model's columns and checks; an output is validated),
    except that an output its own step marked as validated is not validated a second time.

    A step marks a frame it kept only the rows of that passed the same model (`split_valid`): validating it again
    would cost a large batch seconds and could not fail."""

    def __init__(self, model: type[pa.DataFrameModel]) -> None:
        with warnings.catch_warnings():  # dagster-pandera's one function is marked beta; the dependency is pinned
            warnings.simplefilter("ignore", dg.BetaWarning)
            self._validating = pandera_schema_to_dagster_type(model)
        self._model = model.__name__
        self._validated: weakref.WeakValueDictionary[int, pd.DataFrame] = weakref.WeakValueDictionary()
        self.dagster_type = dg.DagsterType(
            self._check, name=self._validating.unique_name, description=self._validating.description,
            metadata=self._validating.metadata, typing_type=pd.DataFrame)

    def mark_validated(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Note that `frame` holds only rows that passed the model in this step; return it."""
        self._validated[id(frame)] = frame
        return frame

    def _check(self, context: dg.TypeCheckContext, value: object) -> dg.TypeCheck:
        if self._validated.get(id(value)) is value:
            return dg.TypeCheck(success=True, description=f"Every row passed {self._model} in the step that made "
                                                          "the frame; those that did not were quarantined.")
        return self._validating.type_check(context, value)
