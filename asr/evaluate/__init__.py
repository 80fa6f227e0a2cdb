"""A model and manifests -> WER and CER reports.

    scoring  evaluate(): decode a manifest, count errors, write report.txt, summary.json, utterances.jsonl
    report   the HTML report: tables, plots, alignments and attention maps of the worst utterances
"""
