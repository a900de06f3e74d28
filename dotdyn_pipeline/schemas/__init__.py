"""pandera models of the frames that flow between assets, and the rules that quarantine a row."""
