"""``pixgmm info``: a readable summary of a Mixture or HistogramModel."""

from __future__ import annotations

import click

from .options import load_model


@click.command()
@click.argument("model_spec", metavar="MODEL")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(model_spec, as_json):
    """Summarise a model: MODEL.json, or jones-rehg-skin / jones-rehg-nonskin."""
    from .summary import describe, render

    model = load_model(model_spec, "MODEL")
    summary = describe(model, model_spec)
    if as_json:
        import json

        click.echo(json.dumps(summary, indent=1))
    else:
        click.echo(render(summary))
