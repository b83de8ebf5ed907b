from services.oncall.main import main

main()
