"""The learner's lab: small experiments that show how recurrent networks remember (charclf lab, explain --gates)."""
