from services.intake.main import main

main()
