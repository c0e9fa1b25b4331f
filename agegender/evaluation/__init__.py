"""Evaluation: the standard figures and the competition score, labelled-data and end-to-end photo evaluation,
interval calibration fitting, and the report with plots. Needs the ``train`` extra (scikit-learn, matplotlib)."""
