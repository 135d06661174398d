from idia.faces import build_face_classifier
from idia.smk import finish, log_to

log_to(snakemake.log[0])
build_face_classifier(
    identities=snakemake.input.identities,
    outcomes=snakemake.input.outcomes,
    model_out=snakemake.output.model,
    report_out=snakemake.output.report,
    photos_out=snakemake.output.photos,
    options=snakemake.params.classifier,
    haar=snakemake.params.haar,
    threads=snakemake.threads,
)
finish(snakemake)
